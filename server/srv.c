/* srv.c -- the server context: opening the storage area and the index, the start-up recovery
 * of pending files, and deletion (rows first in one transaction, then files; the pending list
 * covers a crash between the two). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "server/server.h"
#include "storage/storage.h"

_Static_assert((int)SRV_PATIENT == (int)IDX_PATIENT && (int)SRV_STUDY == (int)IDX_STUDY &&
               (int)SRV_SERIES == (int)IDX_SERIES && (int)SRV_INSTANCE == (int)IDX_INSTANCE &&
               SRV_LEVELS == IDX_LEVELS, "server.h levels are storage.h's");
_Static_assert(SRV_ID_LEN == IDX_ID_LEN && SRV_UUID_LEN == STO_UUID_LEN, "server.h lengths are storage.h's");

/* At start-up: a pending uuid whose row exists is a finished write (the mark is stale);
 * otherwise its file is an orphan from a crash, or a deleted file not yet removed. */
static bool recover_pending(SrvError *err, Srv *srv)
{
    StoError se = { 0 };
    IdxPending *p = NULL;
    size_t n = 0;
    if (!idx_pending_list(&se, srv->db, &p, &n)) {
        srv_error_from_sto(err, &se);
        return false;
    }
    size_t removed = 0;
    for (size_t i = 0; i < n; i++) {
        if (!p[i].referenced) {
            if (!sto_area_remove(&se, srv->area, p[i].uuid)) {
                SRV_LOG_WARN("recovery", "cannot remove orphan %s: %s", p[i].uuid, se.message);
                continue;
            }
            removed++;
        }
        const char *u = p[i].uuid;
        if (!idx_pending_clear(&se, srv->db, &u, 1))
            SRV_LOG_WARN("recovery", "cannot clear pending %s: %s", u, se.message);
    }
    if (n) SRV_LOG_INFO("recovery", "%zu pending file(s) checked, %zu orphan(s) removed", n, removed);
    free(p);
    size_t spooled = sto_area_spool_sweep(srv->area); /* uploads a crash cut short */
    if (spooled) SRV_LOG_INFO("recovery", "%zu unfinished upload spool file(s) removed", spooled);
    return true;
}

static bool make_dir(SrvError *err, const char *path)
{
    char tmp[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof tmp) return srv_fail(err, SRV_PARAMETER_OUT_OF_RANGE, "bad directory name");
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return srv_fail(err, SRV_CANNOT_WRITE_FILE, "cannot create %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return srv_fail(err, SRV_CANNOT_WRITE_FILE, "cannot create %s: %s", tmp, strerror(errno));
    return true;
}

/* Appends key='value' to a libpq connection string, quoting as libpq wants. */
static void conninfo_add(char *out, size_t size, const char *key, const char *value)
{
    size_t n = strlen(out);
    if (n + 1 >= size) return;
    n += (size_t)snprintf(out + n, size - n, "%s%s='", n ? " " : "", key);
    for (const char *v = value; *v && n + 3 < size; v++) {
        if (*v == '\\' || *v == '\'') out[n++] = '\\';
        out[n++] = *v;
    }
    if (n + 2 < size) { out[n++] = '\''; out[n] = '\0'; }
}

/* The libpq connection string of the "PostgreSQL" section (malloc'd). */
static char *pg_conninfo(const CfgPostgres *pg)
{
    if (pg->connection_uri && *pg->connection_uri) return strdup(pg->connection_uri);
    size_t size = 256 + strlen(pg->host) * 2 + strlen(pg->database) * 2 +
                  strlen(pg->username) * 2 + strlen(pg->password) * 2;
    char *out = calloc(1, size), port[16];
    if (!out) return NULL;
    snprintf(port, sizeof port, "%d", pg->port);
    conninfo_add(out, size, "host", pg->host);
    conninfo_add(out, size, "port", port);
    conninfo_add(out, size, "dbname", pg->database);
    conninfo_add(out, size, "user", pg->username);
    if (*pg->password) conninfo_add(out, size, "password", pg->password);
    conninfo_add(out, size, "application_name", "minipacs");
    conninfo_add(out, size, "connect_timeout", "5");
    return out;
}

bool srv_open(SrvError *err, Srv *srv)
{
    StoError se = { 0 };
    srv->started = time(NULL);
    if (!make_dir(err, srv->cfg.storage_dir) || !make_dir(err, srv->cfg.index_dir)) return false;
    srv->area = sto_area_open(&se, srv->cfg.storage_dir, srv->cfg.sync_storage);
    if (!srv->area) goto fail;
    cache_configure((size_t)srv->cfg.dicom_cache_size << 20);
    if (srv->cfg.pg.enable_index) {
        char *conninfo = pg_conninfo(&srv->cfg.pg);
        if (!conninfo) return srv_fail(err, SRV_NOT_ENOUGH_MEMORY, "out of memory");
        IdxOptions opt = { .backend = IDX_BACKEND_POSTGRESQL, .pg_conninfo = conninfo,
                           .pg_connections = srv->cfg.pg.connections,
                           .pg_connect_retries = srv->cfg.pg.retries + 1,
                           .pg_lock = srv->cfg.pg.lock };
        srv->db = idx_open_with(&se, &opt);
        free(conninfo);
        if (srv->db)
            SRV_LOG_INFO("main", "index: PostgreSQL %s", srv->cfg.pg.connection_uri
                         ? "(ConnectionUri)" : srv->cfg.pg.database);
    } else {
        srv->db = idx_open(&se, srv->cfg.index_dir);
    }
    if (!srv->db) goto fail;
    if (!recover_pending(err, srv)) {
        srv_close(srv);
        return false;
    }
    cache_listen_start(srv); /* shared index: other processes' deletes reach our cache */
    return true;
fail:
    srv_error_from_sto(err, &se);
    srv_close(srv);
    return false;
}

void srv_close(Srv *srv)
{
    cache_listen_stop();
    cache_clear();
    idx_close(srv->db);
    srv->db = NULL;
    sto_area_close(srv->area);
    srv->area = NULL;
}

bool srv_delete(SrvError *err, Srv *srv, int level, const char *id, int *remaining_level,
                char remaining_id[SRV_ID_LEN])
{
    StoError se = { 0 };
    IdxDeleteResult dr = { 0 };
    if (!idx_delete(&se, srv->db, level, id, &dr)) {
        srv_error_from_sto(err, &se);
        return false;
    }
    const char **done = malloc((dr.nfiles ? dr.nfiles : 1) * sizeof *done);
    size_t ndone = 0;
    for (size_t i = 0; i < dr.nfiles; i++) {
        cache_invalidate(dr.files[i].id);
        if (sto_area_remove(&se, srv->area, dr.files[i].uuid)) {
            if (done) done[ndone++] = dr.files[i].uuid;
        } else {
            SRV_LOG_WARN("delete", "cannot remove %s: %s", dr.files[i].uuid, se.message);
        }
    }
    if (done && ndone && !idx_pending_clear(&se, srv->db, done, ndone))
        SRV_LOG_WARN("delete", "cannot clear pending files: %s", se.message);
    free(done);
    free(dr.files);
    *remaining_level = dr.remaining_level;
    memcpy(remaining_id, dr.remaining_id, IDX_ID_LEN);
    SRV_LOG_INFO("delete", "deleted %s %s (%zu file(s))", srv_level_name(level), id, dr.nfiles);
    return true;
}

void srv_uuid_new(char out[SRV_UUID_LEN])
{
    sto_uuid_new(out);
}
