/* area.c -- the storage area: one file per stored DICOM instance, named by a random uuid.
 *
 * DESIGN
 * Layout is Orthanc's: StorageDirectory/ab/cd/<uuid>, ab and cd being the uuid's first two
 * hex pairs, so no folder holds more than a few thousand files even with millions stored.
 * A write goes to "<uuid>.tmp" in the final folder (same file system, so rename() is
 * atomic), loops over short writes and EINTR, is fsync'ed when the area was opened with
 * sync=true, then renamed over its final name. The folder is not fsync'ed after the rename
 * (that second fsync halved the ingest rate, measured): like Orthanc, SyncStorageArea makes
 * the file's bytes durable; the index (WAL, synchronous=NORMAL) has the same power-cut
 * window, and a lost rename shows up as a missing file, never as a half-written one.
 * Any failure unlinks the temporary file: a reader never sees a half-written file and a failed write leaves nothing behind. Folders are created on
 * demand (EEXIST is success) and never removed, which keeps concurrent writers and removers
 * from racing on them (at most 65,536 small folders).
 *
 * The area holds no lock and no cache: every call is independent and thread-safe. The
 * crash story (orphan files after a crash between write and index commit) lives in the
 * index's pending list, see index.c; this file only guarantees that files are whole.
 *
 * sto_uuid_valid() guards every path built from a uuid: only 8-4-4-4-12 hex digits pass, so
 * no "..", "/" or NUL can reach a path.
 */
#include "storage/storage.h"
#include "storage/storage_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

struct StoArea {
    char *dir;
    bool sync;
};

void sto_set_err(StoError *err, int code, const char *fmt, ...)
{
    if (!err)
        return;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

/* Maps an errno from a write-side call to our code. */
static int errno_code(int e)
{
    if (e == ENOSPC || e == EDQUOT)
        return STO_ERR_FULL;
    if (e == ENOMEM)
        return STO_ERR_NOMEM;
    return STO_ERR_IO;
}

/* mkdir -p for an absolute or relative path; EEXIST on a directory is success. */
static int mkdir_p(const char *path)
{
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, len + 1);
    while (len > 1 && buf[len - 1] == '/')
        buf[--len] = '\0';
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0) {
        if (errno != EEXIST)
            return -1;
        struct stat st;
        if (stat(buf, &st) != 0)
            return -1;
        if (!S_ISDIR(st.st_mode)) {
            errno = ENOTDIR;
            return -1;
        }
    }
    return 0;
}

StoArea *sto_area_open(StoError *err, const char *dir, bool sync)
{
    StoArea *area = NULL;
    if (!dir || !*dir) {
        sto_set_err(err, STO_ERR_ARG, "empty storage directory");
        return NULL;
    }
    if (strlen(dir) > 4000) {
        sto_set_err(err, STO_ERR_ARG, "storage directory path too long");
        return NULL;
    }
    if (mkdir_p(dir) != 0) {
        int e = errno;
        sto_set_err(err, errno_code(e), "cannot create storage directory %s: %s", dir, strerror(e));
        return NULL;
    }
    area = calloc(1, sizeof *area);
    if (!area || !(area->dir = strdup(dir))) {
        free(area);
        sto_set_err(err, STO_ERR_NOMEM, "out of memory");
        return NULL;
    }
    size_t n = strlen(area->dir);
    while (n > 1 && area->dir[n - 1] == '/')
        area->dir[--n] = '\0';
    area->sync = sync;
    return area;
}

void sto_area_close(StoArea *area)
{
    if (!area)
        return;
    free(area->dir);
    free(area);
}

/* ---- uuids ------------------------------------------------------------------------------ */

static void random_bytes(unsigned char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = getrandom(buf + got, len - got, 0);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        break; /* ENOSYS or similar: fall back to /dev/urandom */
    }
    if (got == len)
        return;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    while (fd >= 0 && got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r > 0)
            got += (size_t)r;
        else if (!(r < 0 && errno == EINTR))
            break;
    }
    if (fd >= 0)
        close(fd);
    if (got != len) {
        /* No randomness at all would mean uuid collisions: an invariant, not bad input. */
        fprintf(stderr, "%s:%d: no source of random bytes\n", __FILE__, __LINE__);
        abort();
    }
}

/* Runs of STO_UUID_RUN consecutive uuids share their first two bytes, so they land in the
 * same ab/cd folder: with fully random uuids nearly every file of a young store creates a
 * folder (65,536 of them), and ext4's folder and inode allocation then dominated the ingest
 * profile. The other 106 bits stay random; over time files still spread evenly. */
#define STO_UUID_RUN 256
static _Atomic unsigned run_count, run_prefix;

void sto_uuid_new(char out[STO_UUID_LEN])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    random_bytes(b, sizeof b);
    if (atomic_fetch_add(&run_count, 1) % STO_UUID_RUN == 0)
        atomic_store(&run_prefix, (unsigned)b[0] << 8 | b[1]);
    unsigned prefix = atomic_load(&run_prefix);
    b[0] = (unsigned char)(prefix >> 8);
    b[1] = (unsigned char)prefix;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 0x0f];
    }
    *p = '\0';
}

bool sto_uuid_valid(const char *s)
{
    if (!s)
        return false;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                     (c >= 'A' && c <= 'F'))) {
            return false; /* also stops at a NUL before 36 characters */
        }
    }
    return s[36] == '\0';
}

/* ---- paths ------------------------------------------------------------------------------ */

void sto_area_path(const StoArea *area, const char *uuid, char *out, size_t size)
{
    snprintf(out, size, "%s/%.2s/%.2s/%s", area->dir, uuid, uuid + 2, uuid);
}

static bool check_uuid(StoError *err, const char *uuid)
{
    if (sto_uuid_valid(uuid))
        return true;
    sto_set_err(err, STO_ERR_ARG, "malformed uuid");
    return false;
}

/* ---- write ------------------------------------------------------------------------------ */

static int write_all(int fd, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

bool sto_area_write(StoError *err, StoArea *area, const char *uuid, const void *buf, size_t len)
{
    char folder[4096], tmp[4096], final[4096];
    int fd = -1;
    bool tmp_exists = false, ok = false;
    const char *step = "";

    if (!check_uuid(err, uuid))
        return false;
    if (snprintf(folder, sizeof folder, "%s/%.2s/%.2s", area->dir, uuid, uuid + 2) >=
            (int)sizeof folder ||
        snprintf(final, sizeof final, "%s/%s", folder, uuid) >= (int)sizeof final ||
        snprintf(tmp, sizeof tmp, "%s/%s.tmp", folder, uuid) >= (int)sizeof tmp) {
        sto_set_err(err, STO_ERR_ARG, "storage path too long");
        return false;
    }

    /* The folder usually exists: try the open first, create folders only on ENOENT. */
    step = "open";
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 && errno == ENOENT) {
        step = "mkdir";
        if (mkdir_p(folder) != 0)
            goto fail;
        step = "open";
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    }
    if (fd < 0)
        goto fail;
    tmp_exists = true;
    step = "write";
    if (write_all(fd, buf, len) != 0)
        goto fail;
    step = "fsync";
    if (area->sync && fsync(fd) != 0)
        goto fail;
    step = "close";
    int rc = close(fd);
    fd = -1;
    if (rc != 0 && errno != EINTR)
        goto fail;
    step = "rename";
    if (rename(tmp, final) != 0)
        goto fail;
    tmp_exists = false;
    ok = true;
    goto out;

fail: {
    int e = errno;
    sto_set_err(err, errno_code(e), "storage %s %s: %s", step, uuid, strerror(e));
}
out:
    if (fd >= 0)
        close(fd);
    if (tmp_exists)
        unlink(tmp);
    return ok;
}

/* ---- spool files ------------------------------------------------------------------------- */

int sto_area_spool_open(StoError *err, StoArea *area, char *path, size_t size)
{
    char folder[4096], uuid[STO_UUID_LEN];
    sto_uuid_new(uuid);
    if (snprintf(folder, sizeof folder, "%s/spool", area->dir) >= (int)sizeof folder ||
        snprintf(path, size, "%s/%s.spool", folder, uuid) >= (int)size) {
        sto_set_err(err, STO_ERR_ARG, "storage path too long");
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno == ENOENT && mkdir_p(folder) == 0)
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        sto_set_err(err, errno_code(e), "cannot create spool file %s: %s", path, strerror(e));
        path[0] = '\0';
    }
    return fd;
}

void sto_area_spool_flush(StoArea *area, int fd, bool wait)
{
    if (area->sync) /* a hint: the fsync decides and reports */
        (void)sync_file_range(fd, 0, 0, wait ? SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                                   SYNC_FILE_RANGE_WAIT_AFTER
                                             : SYNC_FILE_RANGE_WRITE);
}

bool sto_area_spool_sync(StoError *err, StoArea *area, int fd)
{
    if (!area->sync)
        return true;
    if (fsync(fd) == 0)
        return true;
    int e = errno;
    sto_set_err(err, errno_code(e), "storage fsync of a spool file: %s", strerror(e));
    return false;
}

bool sto_area_spool_adopt(StoError *err, StoArea *area, const char *uuid, int fd, const char *path,
                          bool synced)
{
    char folder[4096], final[4096];
    if (!check_uuid(err, uuid))
        return false;
    if (snprintf(folder, sizeof folder, "%s/%.2s/%.2s", area->dir, uuid, uuid + 2) >=
            (int)sizeof folder ||
        snprintf(final, sizeof final, "%s/%s", folder, uuid) >= (int)sizeof final) {
        sto_set_err(err, STO_ERR_ARG, "storage path too long");
        return false;
    }
    const char *step = "fsync";
    if (area->sync && !synced && fsync(fd) != 0)
        goto fail;
    step = "rename";
    if (rename(path, final) == 0)
        return true;
    if (errno != ENOENT)
        goto fail;
    step = "mkdir";
    if (mkdir_p(folder) != 0)
        goto fail;
    step = "rename";
    if (rename(path, final) == 0)
        return true;
fail: {
    int e = errno;
    sto_set_err(err, errno_code(e), "storage %s %s: %s", step, uuid, strerror(e));
}
    return false;
}

size_t sto_area_spool_sweep(StoArea *area)
{
    char folder[4096], path[4096 + 256];
    size_t n = 0;
    if (snprintf(folder, sizeof folder, "%s/spool", area->dir) >= (int)sizeof folder)
        return 0;
    DIR *d = opendir(folder);
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 6, ".spool") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", folder, e->d_name);
        if (unlink(path) == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* ---- read / open / remove ----------------------------------------------------------------- */

int sto_area_open_fd(StoError *err, StoArea *area, const char *uuid, uint64_t *size)
{
    char path[4096];
    struct stat st;
    if (!check_uuid(err, uuid))
        return -1;
    sto_area_path(area, uuid, path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        sto_set_err(err, e == ENOENT ? STO_ERR_NOT_FOUND : STO_ERR_IO, "cannot open %s: %s", uuid,
                strerror(e));
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        sto_set_err(err, STO_ERR_IO, "cannot stat %s: %s", uuid, strerror(e));
        return -1;
    }
    if (size)
        *size = (uint64_t)st.st_size;
    return fd;
}

bool sto_area_read(StoError *err, StoArea *area, const char *uuid, void **buf, size_t *len)
{
    uint64_t size = 0;
    unsigned char *data = NULL;
    bool ok = false;
    *buf = NULL;
    *len = 0;

    int fd = sto_area_open_fd(err, area, uuid, &size);
    if (fd < 0)
        return false;
    if (size > (uint64_t)SIZE_MAX - 1) {
        sto_set_err(err, STO_ERR_NOMEM, "file %s too large", uuid);
        goto out;
    }
    data = malloc(size ? (size_t)size : 1);
    if (!data) {
        sto_set_err(err, STO_ERR_NOMEM, "out of memory reading %s", uuid);
        goto out;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, data + got, (size_t)size - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            sto_set_err(err, STO_ERR_IO, "cannot read %s: %s", uuid, strerror(errno));
            goto out;
        }
        if (r == 0) {
            sto_set_err(err, STO_ERR_IO, "file %s shorter than expected", uuid);
            goto out;
        }
        got += (size_t)r;
    }
    *buf = data;
    *len = got;
    data = NULL;
    ok = true;
out:
    free(data);
    close(fd);
    return ok;
}

bool sto_area_remove(StoError *err, StoArea *area, const char *uuid)
{
    char path[4096], tmp[4096];
    if (!check_uuid(err, uuid))
        return false;
    sto_area_path(area, uuid, path, sizeof path);
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        sto_set_err(err, STO_ERR_ARG, "storage path too long");
        return false;
    }
    if (unlink(path) != 0 && errno != ENOENT) {
        sto_set_err(err, STO_ERR_IO, "cannot remove %s: %s", uuid, strerror(errno));
        return false;
    }
    if (unlink(tmp) != 0 && errno != ENOENT) {
        sto_set_err(err, STO_ERR_IO, "cannot remove %s.tmp: %s", uuid, strerror(errno));
        return false;
    }
    return true;
}
