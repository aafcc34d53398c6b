/* spool.c -- spool files: large uploads written to the storage area as they arrive.
 *
 * DESIGN: a thin owner around storage/'s spool file (sto_area_spool_open: a fresh file under
 * StorageDirectory/spool/, same file system as the stored files so ingest_spool adopts it with
 * a rename). Writes loop over short writes and EINTR; ENOSPC maps to FullStorage. Nothing here
 * holds the bytes: the page cache does, and the kernel drops those pages under pressure.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "server/server.h"
#include "storage/storage.h"

bool srv_spool_open(SrvError *err, Srv *srv, SrvSpool *sp)
{
    memset(sp, 0, sizeof *sp);
    sp->fd = -1;
    StoError se = { 0 };
    sp->fd = sto_area_spool_open(&se, srv->area, sp->path, sizeof sp->path);
    if (sp->fd < 0) {
        sp->path[0] = '\0';
        srv_error_from_sto(err, &se);
        return false;
    }
    return true;
}

void srv_spool_flush(Srv *srv, int fd, bool wait) { sto_area_spool_flush(srv->area, fd, wait); }

bool srv_spool_sync(SrvError *err, Srv *srv, int fd)
{
    StoError se = { 0 };
    if (sto_area_spool_sync(&se, srv->area, fd)) return true;
    srv_error_from_sto(err, &se);
    return false;
}

bool srv_spool_write(SrvError *err, SrvSpool *sp, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(sp->fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            return srv_fail(err, e == ENOSPC || e == EDQUOT ? SRV_FULL_STORAGE : SRV_CANNOT_WRITE_FILE,
                            "cannot write the upload's spool file: %s", strerror(e));
        }
        p += w;
        n -= (size_t)w;
        sp->len += (uint64_t)w;
    }
    return true;
}

ssize_t srv_spool_read(SrvSpool *sp, uint64_t offset, void *buf, size_t max)
{
    for (;;) {
        ssize_t r = pread(sp->fd, buf, max, (off_t)offset);
        if (r < 0 && errno == EINTR) continue;
        return r;
    }
}

void srv_spool_discard(SrvSpool *sp)
{
    if (!sp) return;
    if (sp->path[0]) {
        if (unlink(sp->path) != 0 && errno != ENOENT)
            SRV_LOG_WARN("spool", "cannot remove %s: %s", sp->path, strerror(errno));
        sp->path[0] = '\0';
    }
    if (sp->fd > 0) close(sp->fd);
    sp->fd = -1;
}
